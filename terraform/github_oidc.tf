# The role .github/workflows/deploy.yml assumes through GitHub's OIDC provider:
# no long-lived AWS keys in GitHub. Only the main branch of var.github_repository
# can assume it, and it can only push this repository's image, run the
# migrate task and roll these two services.

resource "aws_iam_openid_connect_provider" "github" {
  count = var.github_oidc_provider_arn == null ? 1 : 0

  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
  # AWS validates GitHub's certificate against its own trust store; the
  # thumbprints are kept for older provider versions that require the field.
  thumbprint_list = [
    "6938fd4d98bab03faadb97b34396831e3780aea1",
    "1c58a3a8518e8759bf075b76b750d4f2df264fcd",
  ]
}

locals {
  github_oidc_provider_arn = var.github_oidc_provider_arn != null ? var.github_oidc_provider_arn : aws_iam_openid_connect_provider.github[0].arn
}

data "aws_iam_policy_document" "github_deploy_assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Push to main only. (A job that declares a GitHub `environment:` gets a
    # different subject, repo:OWNER/NAME:environment:NAME; change this if you add one.)
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["repo:${var.github_repository}:ref:refs/heads/main"]
    }
  }
}

resource "aws_iam_role" "github_deploy" {
  name                 = "${local.name}-github-deploy"
  description          = "GitHub Actions deploy for ${var.github_repository} (main)"
  assume_role_policy   = data.aws_iam_policy_document.github_deploy_assume.json
  max_session_duration = 3600
}

locals {
  # The task definition families the workflow registers revisions of.
  deployed_family_arns = [
    for family in [aws_ecs_task_definition.api.family, aws_ecs_task_definition.worker.family, aws_ecs_task_definition.migrate.family] :
    "arn:aws:ecs:${var.aws_region}:${local.account_id}:task-definition/${family}:*"
  ]
}

data "aws_iam_policy_document" "github_deploy" {
  #checkov:skip=CKV_AWS_356:ecr:GetAuthorizationToken, ecs:DescribeTaskDefinition and ecs:RegisterTaskDefinition do not support resource-level permissions; every other statement is scoped to this stack's repository, services and roles.
  #checkov:skip=CKV_AWS_111:Same statement: RegisterTaskDefinition is a write action that only accepts Resource "*". It cannot start anything by itself; UpdateService (scoped) and PassRole (scoped) are what deploy it.
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "EcrPushThisRepository"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [aws_ecr_repository.app.arn]
  }

  statement {
    sid = "TaskDefinitions"
    actions = [
      "ecs:DescribeTaskDefinition",
      "ecs:RegisterTaskDefinition",
    ]
    resources = ["*"]
  }

  statement {
    sid = "RollTheTwoServices"
    actions = [
      "ecs:DescribeServices",
      "ecs:UpdateService",
    ]
    resources = [
      "arn:aws:ecs:${var.aws_region}:${local.account_id}:service/${aws_ecs_cluster.main.name}/${aws_ecs_service.api.name}",
      "arn:aws:ecs:${var.aws_region}:${local.account_id}:service/${aws_ecs_cluster.main.name}/${aws_ecs_service.worker.name}",
    ]
  }

  # The render action reads the family's tags (DescribeTaskDefinition with
  # include=TAGS) and copies them onto the new revision; tagging on create
  # needs ecs:TagResource.
  statement {
    sid       = "ReadTagsOfTheDeployedFamilies"
    actions   = ["ecs:ListTagsForResource"]
    resources = local.deployed_family_arns
  }

  statement {
    sid       = "TagNewRevisionsOfTheDeployedFamilies"
    actions   = ["ecs:TagResource"]
    resources = local.deployed_family_arns

    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RegisterTaskDefinition"]
    }
  }

  # The migrate task, once per deploy, in this cluster only; then its status,
  # exit code and log lines.
  statement {
    sid       = "RunTheMigrateTask"
    actions   = ["ecs:RunTask"]
    resources = ["arn:aws:ecs:${var.aws_region}:${local.account_id}:task-definition/${aws_ecs_task_definition.migrate.family}:*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.main.arn]
    }
  }

  statement {
    sid       = "WatchTasksOfThisCluster"
    actions   = ["ecs:DescribeTasks"]
    resources = ["arn:aws:ecs:${var.aws_region}:${local.account_id}:task/${aws_ecs_cluster.main.name}/*"]
  }

  statement {
    sid       = "ReadTheMigrateLog"
    actions   = ["logs:GetLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this["migrate"].arn}:*"]
  }

  statement {
    sid     = "PassOnlyTheTaskRoles"
    actions = ["iam:PassRole"]
    resources = [
      aws_iam_role.execution["services"].arn,
      aws_iam_role.execution["one_off"].arn,
      aws_iam_role.api_task.arn,
      aws_iam_role.worker_task.arn,
    ]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "github_deploy" {
  name   = "deploy"
  role   = aws_iam_role.github_deploy.id
  policy = data.aws_iam_policy_document.github_deploy.json
}
